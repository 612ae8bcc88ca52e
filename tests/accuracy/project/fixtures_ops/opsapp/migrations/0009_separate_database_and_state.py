from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('opsapp', '0008_rename_index_remove_index_and_constraint'),
    ]

    operations = [
        # The column is made by hand-written SQL; the state learns of it separately.
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql="ALTER TABLE \"opsapp_writer\" ADD COLUMN \"bio\" text DEFAULT '' NOT NULL",
                    reverse_sql='ALTER TABLE "opsapp_writer" DROP COLUMN "bio"',
                ),
            ],
            state_operations=[
                migrations.AddField(
                    model_name='writer',
                    name='bio',
                    field=models.TextField(blank=True, default=''),
                ),
            ],
        ),
        # The same operation on both sides: the database half is an ordinary AddField.
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AddField(
                    model_name='book',
                    name='edition',
                    field=models.PositiveSmallIntegerField(default=1),
                ),
            ],
            state_operations=[
                migrations.AddField(
                    model_name='book',
                    name='edition',
                    field=models.PositiveSmallIntegerField(default=1),
                ),
            ],
        ),
    ]
