"""The gateway: Mattermost (REST + WebSocket) on one side, the session worker on the other.

The supervisor starts it through ``run_gateway`` (gateway/main.py); the modules' roles are in
README.md's code layout.
"""

from __future__ import annotations

from gateway.config import GatewayConfig
from gateway.main import run_gateway

__all__ = ["GatewayConfig", "run_gateway"]
