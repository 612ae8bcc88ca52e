from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('opsapp', '0005_rename_author_writer'),
    ]

    operations = [
        migrations.AlterModelTable(
            name='book',
            table='ops_book',
        ),
    ]
