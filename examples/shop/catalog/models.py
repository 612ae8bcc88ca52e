from django.db import models
from taggit.managers import TaggableManager


class Category(models.Model):
    name = models.CharField(max_length=100, unique=True)

    class Meta:
        verbose_name_plural = "categories"

    def __str__(self):
        return self.name


class Product(models.Model):
    name = models.CharField(max_length=200)
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    sku = models.CharField(max_length=32, blank=True, default="")
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    related_categories = models.ManyToManyField(Category, blank=True, related_name="+")
    tags = TaggableManager(blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["category", "-unit_price"], name="catalog_product_cat_price"),
        ]

    def __str__(self):
        return self.name
