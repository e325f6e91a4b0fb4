from django.http import HttpResponse


def lead_form(request):
    return HttpResponse("form")


def lead_result(request, public_id):
    return HttpResponse("result")


def lead_result_status(request, public_id):
    return HttpResponse("status")
