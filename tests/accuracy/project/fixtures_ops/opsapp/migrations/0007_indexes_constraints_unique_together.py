import django
from django.db import migrations, models

# Django 5.1 renamed CheckConstraint(check=...) to condition=; `check` warns until 6.0 drops it.
_CHECK_KEYWORD = 'condition' if django.VERSION >= (5, 1) else 'check'


class Migration(migrations.Migration):

    dependencies = [
        ('opsapp', '0006_alter_book_table'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='book',
            index=models.Index(fields=['title'], name='ops_book_title_idx'),
        ),
        migrations.AddIndex(
            model_name='writer',
            index=models.Index(fields=['name'], name='ops_writer_name_idx'),
        ),
        migrations.AddIndex(
            model_name='archive',
            index=models.Index(fields=['edition'], name='ops_archive_edition_idx'),
        ),
        migrations.AddConstraint(
            model_name='book',
            constraint=models.CheckConstraint(name='ops_book_pages_sane', **{_CHECK_KEYWORD: models.Q(('page_count__lte', 100000))}),
        ),
        migrations.AddConstraint(
            model_name='book',
            constraint=models.CheckConstraint(name='ops_book_price_nonneg', **{_CHECK_KEYWORD: models.Q(('price__gte', 0))}),
        ),
        migrations.AddConstraint(
            model_name='book',
            constraint=models.UniqueConstraint(condition=models.Q(('subtitle', ''), _negated=True), fields=('title',), name='ops_book_title_uniq_subtitled'),
        ),
        migrations.AlterUniqueTogether(
            name='writer',
            unique_together={('name', 'email')},
        ),
    ]
