"""Django Channels: HTTP through Django, WebSockets through a URLRouter."""

import os

os.environ["DJANGO_SETTINGS_MODULE"] = "djroutes.settings"

from django.core.asgi import get_asgi_application  # noqa: E402

http = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.generic.websocket import WebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path, re_path  # noqa: E402


class Chat(WebsocketConsumer):
    def connect(self):
        self.accept()


application = ProtocolTypeRouter(
    {
        "http": http,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(
                URLRouter(
                    [
                        path("ws/chat/<str:room>/", Chat.as_asgi()),
                        re_path(r"^ws/feed/(?P<n>[0-9]+)$", Chat.as_asgi()),
                        path("ws/nested/", URLRouter([path("inner/", Chat.as_asgi())])),
                    ]
                )
            )
        ),
    }
)

# A WebSocket consumer that takes every path: nothing can be told.
catch_all = ProtocolTypeRouter({"http": http, "websocket": Chat.as_asgi()})
