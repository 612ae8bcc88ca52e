from django.db import migrations


def seed_tags(apps, schema_editor):
    Tag = apps.get_model('opsapp', 'Tag')
    db_alias = schema_editor.connection.alias
    for label in ('fiction', 'history'):
        Tag.objects.using(db_alias).get_or_create(label=label)


class Migration(migrations.Migration):

    dependencies = [
        ('opsapp', '0010_delete_scratch'),
    ]

    operations = [
        migrations.RunPython(seed_tags, migrations.RunPython.noop),
        migrations.RunSQL(
            sql="UPDATE \"ops_book\" SET \"subtitle\" = '' WHERE \"subtitle\" IS NULL",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
