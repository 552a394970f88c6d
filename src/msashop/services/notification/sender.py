"""Sender adapters: SMTP when a mail server is configured, otherwise record only."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from msashop.services.notification.domain import DeliveredVia, Email


class RecordingSender:
    """No mail server: the notification is stored and shown in the shop, nothing is sent."""

    async def send(self, email: Email) -> DeliveredVia:
        return DeliveredVia.RECORDED


class SmtpSender:
    def __init__(
        self, *, host: str, port: int, username: str, password: str, sender: str, timeout: float
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.sender = sender
        self.timeout = timeout

    async def send(self, email: Email) -> DeliveredVia:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = email.to
        message["Subject"] = email.subject
        message.set_content(email.body)
        await aiosmtplib.send(
            message,
            hostname=self.host,
            port=self.port,
            username=self.username or None,
            password=self.password or None,
            timeout=self.timeout,
            use_tls=self.port == 465,  # implicit TLS port; others upgrade with STARTTLS if offered
        )
        return DeliveredVia.EMAIL
