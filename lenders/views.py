from django.http import HttpResponse


def inbox(request):
    return HttpResponse("inbox")


def delivery_detail(request, delivery_id):
    return HttpResponse("detail")


def delivery_status(request, delivery_id):
    return HttpResponse("status")
