from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('opsapp', '0011_seed_tags'),
    ]

    operations = [
        migrations.AddField(
            model_name='book',
            name='isbn13',
            field=models.CharField(blank=True, default='', max_length=13),
        ),
    ]
