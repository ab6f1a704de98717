"""The web server: FastAPI routes, the websocket, the hub and its queue, fan-out, replays and quotas; no torch."""
