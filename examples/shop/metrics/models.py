from django.db import models


class PageView(models.Model):
    path = models.CharField(max_length=500)
    referrer = models.CharField(max_length=500, blank=True, default="")
    viewed_at = models.DateTimeField(auto_now_add=True)
