"""DingTalk (钉钉) internal-app robot, one module per job.

- signing: the HTTP callback signatures and the card callback route of a tenant
- events: callbacks and Stream frames → Events
- stream: the per-tenant Stream connection on the official SDK
- adapter: the Adapter (inbound routes, outbound sends)
- api: the OpenAPI client (token, rate window, errors)
- directory: the directory sync
"""
