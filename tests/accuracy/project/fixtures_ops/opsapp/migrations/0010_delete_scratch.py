from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('opsapp', '0009_separate_database_and_state'),
    ]

    operations = [
        migrations.DeleteModel(
            name='Scratch',
        ),
    ]
