from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('opsapp', '0002_book_subtitle_publisher_scratch'),
    ]

    operations = [
        migrations.AddField(
            model_name='author',
            name='nickname',
            field=models.CharField(blank=True, default='', max_length=50),
        ),
    ]
