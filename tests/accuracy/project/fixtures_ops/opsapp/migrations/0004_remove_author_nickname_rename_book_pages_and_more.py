from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('opsapp', '0003_author_nickname'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='author',
            name='nickname',
        ),
        migrations.RenameField(
            model_name='book',
            old_name='pages',
            new_name='page_count',
        ),
        migrations.AlterField(
            model_name='book',
            name='title',
            field=models.CharField(db_column='book_title', max_length=200),
        ),
        migrations.AlterField(
            model_name='book',
            name='price',
            field=models.DecimalField(decimal_places=2, default=0, max_digits=10),
        ),
    ]
