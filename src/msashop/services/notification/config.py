from pathlib import Path
from typing import Self

from pydantic import model_validator

from msashop.chassis.settings import ServiceSettings


class NotificationSettings(ServiceSettings):
    # Empty host: notifications are recorded only, no email is sent.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_from: str = "msashop <no-reply@msashop.local>"
    smtp_timeout_seconds: float = 5.0
    # Where admin alerts (a saga could not undo a step) are also emailed; empty: recorded only.
    admin_email: str = ""
    # Tests only: a file of user ids whose order notifications fail on purpose (faults.py).
    fault_file: Path | None = None

    def development_keys(self) -> dict[str, bool]:
        # A mail server in production needs credentials; without one nothing is sent at all.
        return {
            **super().development_keys(),
            "smtp_password": bool(self.smtp_host) and not self.smtp_password,
        }

    @model_validator(mode="after")
    def _no_fault_injection_in_production(self) -> Self:
        if self.env == "production" and self.fault_file is not None:
            raise ValueError("fault_file makes notifications fail on purpose; production refuses it")
        return self
