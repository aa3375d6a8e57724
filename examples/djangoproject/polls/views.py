"""Views for the demo: no models, fixed data, JSON answers."""

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

QUESTIONS = {
    1: "What's new?",
    2: "Which WSGI server?",
}


def index(request):
    return JsonResponse({"status": "ok"})


def poll_list(request):
    return JsonResponse(
        {"questions": [{"id": k, "text": v} for k, v in sorted(QUESTIONS.items())]}
    )


def detail(request, question_id):
    if question_id not in QUESTIONS:
        return JsonResponse({"error": "no such question"}, status=404)
    return JsonResponse({"id": question_id, "text": QUESTIONS[question_id]})


def results(request, name):
    return JsonResponse({"poll": name, "votes": 0})


def archive(request, year):
    # re_path hands over the captured group as a string.
    return JsonResponse({"year": int(year)})


def boom(request):
    raise RuntimeError("boom: deliberate failure for error-handling tests")


@csrf_exempt  # a demo endpoint for raw POST bodies, not a form
@require_POST
def echo(request):
    return HttpResponse(request.body, content_type="application/octet-stream")
