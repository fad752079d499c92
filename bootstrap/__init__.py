"""Attested provisioning of the KMS (spec/bootstrap.md, bootstrap/PROTOCOL.md), one job per module:

- keys: sk from the TEE, and the bootstrap / API TLS keys and the config sealing key derived from it;
- sealing: AES-256-GCM sealed file of the provisioned configuration;
- provisioned: the provisioned configuration (database settings, TLS material), validated, and its sealed form;
- state: the provisioning state machine (409s);
- certs: the bootstrap RA-TLS certificate, the API key's CSR, checks of uploaded chains and PKCS#12;
- owner: owner binding (flag, HOST_DATA / MRCONFIGID) and the 403 check;
- https: the HTTPS server (pyOpenSSL: any client certificate accepted, its key hash given to the app);
- app: the Flask app of every bootstrap call;
- launcher: `kms-server` itself: direct start, or unseal / bootstrap / handover to the main KMS.

Imports: bootstrap uses attestation, kms.config and kms.server; none of them imports bootstrap.
"""
