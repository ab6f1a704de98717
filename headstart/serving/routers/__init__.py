"""The server's routes, one router per resource: status, races, panels, pages and the websocket."""
