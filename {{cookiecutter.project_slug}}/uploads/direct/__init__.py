"""
Straight into the bucket: browsers upload into AWS_STORAGE_BUCKET_NAME with
signed requests, and no byte of the file passes through an app host.

The routes are the ones Uppy's AwsS3 plugin calls on a Companion server
(`companionEndpoint: '/uploads/companion'`), so Uppy works against the site
unchanged (views.py). The site keeps the rules and the records:

    bucket.py      the boto3 client, the key each upload gets (under the
                   owner's prefix, chosen here), the signing, and the part
                   of the staging contract the engine calls for these
                   uploads (create, remove, open_locked)
    verifying.py   after complete: read the object back once, check its
                   size, record its SHA-256, `complete` (the engine's
                   finish for protocol s3, in a thread or on Celery)
    views.py       the routes, thin: parse, check, sign, answer

An upload is an ordinary Upload of protocol `s3`: the same limits at creation
(engine.start), the same status API and admin, the same transitions (cancel
and expiry abort its multipart upload), leases and signals.
"""
