from django.db import migrations, models


class Migration(migrations.Migration):

    replaces = [('opsapp', '0012_book_isbn13'), ('opsapp', '0013_book_ops_book_isbn13_idx')]

    dependencies = [
        ('opsapp', '0011_seed_tags'),
    ]

    operations = [
        migrations.AddField(
            model_name='book',
            name='isbn13',
            field=models.CharField(blank=True, default='', max_length=13),
        ),
        migrations.AddIndex(
            model_name='book',
            index=models.Index(fields=['isbn13'], name='ops_book_isbn13_idx'),
        ),
    ]
