"""A bake of real races, and the static site that replays them; nothing of the web server."""
