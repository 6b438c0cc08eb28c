"""ASGI entry point for uvicorn / gunicorn: `service.asgi:app`, configured from the environment."""

from service.app import create_app

app = create_app()
