"""The final state of opsapp, reached through migrations that use every kind of operation.

History in brief: Author was renamed to Writer (an FK and an M2M point to it, and it owns an
M2M); Book moved to db_table `ops_book`, had a field renamed and a db_column added; Scratch was
created and deleted; indexes and constraints were added, renamed and removed; `bio` and
`edition` came through SeparateDatabaseAndState; `isbn13` and its index through a squashed
migration; Review was created with its indexes and constraints declared in Meta.
"""
import django
from django.db import models

# Django 5.1 renamed CheckConstraint(check=...) to condition=; `check` warns until 6.0 drops it.
# Picking the keyword by version keeps this app free of warnings on both 4.2 and 5.2.
_CHECK_KEYWORD = "condition" if django.VERSION >= (5, 1) else "check"


def check_constraint(expression, name):
    return models.CheckConstraint(name=name, **{_CHECK_KEYWORD: expression})


class Tag(models.Model):
    label = models.CharField(max_length=50)


class Writer(models.Model):
    name = models.CharField(max_length=100)
    email = models.EmailField(blank=True)
    favourite_tags = models.ManyToManyField(Tag, blank=True, related_name="fans")
    bio = models.TextField(blank=True, default="")

    class Meta:
        unique_together = [("name", "email")]
        indexes = [models.Index(fields=["name"], name="ops_writer_name_ix")]


class Publisher(models.Model):
    name = models.CharField(max_length=100)
    authors = models.ManyToManyField(Writer, blank=True, related_name="publishers")

    class Meta:
        db_table = "OpsPublisher"


class Book(models.Model):
    title = models.CharField(max_length=200, db_column="book_title")
    subtitle = models.CharField(max_length=200, blank=True, default="")
    author = models.ForeignKey(Writer, on_delete=models.CASCADE, related_name="books")
    publisher = models.ForeignKey(
        Publisher, null=True, blank=True, on_delete=models.SET_NULL, related_name="books"
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="books")
    page_count = models.PositiveIntegerField(default=0)
    price = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    edition = models.PositiveSmallIntegerField(default=1)
    isbn13 = models.CharField(max_length=13, blank=True, default="")

    class Meta:
        db_table = "ops_book"
        indexes = [models.Index(fields=["isbn13"], name="ops_book_isbn13_idx")]
        constraints = [
            check_constraint(models.Q(page_count__lte=100000), "ops_book_pages_sane"),
            models.UniqueConstraint(
                fields=["title"],
                condition=~models.Q(subtitle=""),
                name="ops_book_title_uniq_subtitled",
            ),
        ]


class FeaturedBook(Book):
    class Meta:
        proxy = True


class Archive(models.Model):
    edition = models.PositiveIntegerField()
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        # Longer than PostgreSQL's 63-byte identifier limit: the server truncates it.
        db_table = "opsapp_archive_of_every_edition_ever_printed_including_reprints_and_errata"
        indexes = [models.Index(fields=["edition"], name="ops_archive_edition_idx")]


class LegacyThing(models.Model):
    code = models.CharField(max_length=20, primary_key=True)
    label = models.CharField(max_length=100)

    class Meta:
        managed = False
        db_table = "legacy_thing"


class Review(models.Model):
    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.CharField(max_length=100)
    rating = models.PositiveSmallIntegerField()

    class Meta:
        indexes = [models.Index(fields=["book", "-rating"], name="ops_review_book_rating_idx")]
        constraints = [
            check_constraint(models.Q(rating__gte=1, rating__lte=5), "ops_review_rating_range"),
            models.UniqueConstraint(fields=["book", "reviewer"], name="ops_review_once_per_book"),
        ]
