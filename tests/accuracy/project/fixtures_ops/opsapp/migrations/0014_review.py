import django
import django.db.models.deletion
from django.db import migrations, models

# Django 5.1 renamed CheckConstraint(check=...) to condition=; `check` warns until 6.0 drops it.
_CHECK_KEYWORD = 'condition' if django.VERSION >= (5, 1) else 'check'


class Migration(migrations.Migration):

    dependencies = [
        ('opsapp', '0012_book_isbn13_squashed_0013_book_ops_book_isbn13_idx'),
    ]

    operations = [
        migrations.CreateModel(
            name='Review',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('reviewer', models.CharField(max_length=100)),
                ('rating', models.PositiveSmallIntegerField()),
                ('book', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='reviews', to='opsapp.book')),
            ],
            options={
                'indexes': [models.Index(fields=['book', '-rating'], name='ops_review_book_rating_idx')],
                'constraints': [models.CheckConstraint(name='ops_review_rating_range', **{_CHECK_KEYWORD: models.Q(('rating__gte', 1), ('rating__lte', 5))}), models.UniqueConstraint(fields=('book', 'reviewer'), name='ops_review_once_per_book')],
            },
        ),
    ]
