"""The dashboard: its HTML, its ASGI app under uvicorn, and a real Chromium with JavaScript off."""
