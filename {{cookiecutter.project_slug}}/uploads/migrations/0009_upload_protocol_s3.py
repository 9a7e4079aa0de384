from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("uploads", "0007_upload_staging_ref"),
    ]

    operations = [
        migrations.AlterField(
            model_name="upload",
            name="protocol",
            field=models.CharField(
                choices=[
                    ("flow", "flow.js"),
                    ("resumable", "resumable.js"),
                    ("tus", "tus"),
                    ("chunked", "Content-Range"),
                    ("s3", "S3 direct (Uppy)"),
                ],
                max_length=16,
            ),
        ),
    ]
