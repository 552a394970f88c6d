"""The event bus port and its adapters."""

from msashop.chassis.bus.port import EventBus, MessageHandler

__all__ = ["EventBus", "MessageHandler"]
