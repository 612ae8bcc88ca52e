from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('opsapp', '0012_book_isbn13'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='book',
            index=models.Index(fields=['isbn13'], name='ops_book_isbn13_idx'),
        ),
    ]
