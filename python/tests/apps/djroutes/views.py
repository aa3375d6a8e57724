from django.http import HttpResponse


def ok(request, *args, **kwargs):
    return HttpResponse("ok")
