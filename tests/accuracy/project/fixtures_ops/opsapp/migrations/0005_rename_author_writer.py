from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('opsapp', '0004_remove_author_nickname_rename_book_pages_and_more'),
    ]

    operations = [
        migrations.RenameModel(
            old_name='Author',
            new_name='Writer',
        ),
    ]
