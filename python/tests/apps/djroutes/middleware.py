class HostURLconf:
    """Serves api.* from another URLconf."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.get_host().startswith("api."):
            request.urlconf = "djroutes.urls_i18n"
        return self.get_response(request)
