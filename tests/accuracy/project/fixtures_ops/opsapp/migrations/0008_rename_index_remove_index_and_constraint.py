from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('opsapp', '0007_indexes_constraints_unique_together'),
    ]

    operations = [
        migrations.RenameIndex(
            model_name='writer',
            new_name='ops_writer_name_ix',
            old_name='ops_writer_name_idx',
        ),
        migrations.RemoveIndex(
            model_name='book',
            name='ops_book_title_idx',
        ),
        migrations.RemoveConstraint(
            model_name='book',
            name='ops_book_price_nonneg',
        ),
    ]
