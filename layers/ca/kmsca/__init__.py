"""kmsca: the core of a serverless private certificate authority whose CA keys live in AWS KMS.

Modules: ``errors`` (error codes), ``settings`` (environment), ``signer`` (KMS-backed keys),
``names`` / ``profiles`` (what may be certified), ``models`` (wire requests), ``issuance``
(the pipeline), ``certificates`` (X.509 building), ``store`` (DynamoDB inventory),
``publish`` (S3 artefacts), ``bootstrap`` (CA hierarchy), ``ca`` (the loaded issuing CA).
"""
