from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("uploads", "0005_upload_deleted"),
    ]

    operations = [
        migrations.AddField(
            model_name="upload",
            name="finishing_until",
            field=models.DateTimeField(
                blank=True,
                help_text="While processing: the finisher's lease, renewed as it works. Past it, "
                "the finisher is taken to have stopped and another run takes the upload over.",
                null=True,
            ),
        ),
    ]
