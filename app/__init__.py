"""The Gradio dashboard. ``app.server.main`` is the entry point (``python app.py``)."""
