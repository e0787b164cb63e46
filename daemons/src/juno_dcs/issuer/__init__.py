"""The grid's token issuer: an OpenID Connect provider built on Authlib's OAuth 2.0 server.

It serves discovery (`/.well-known/openid-configuration`), its public keys (`/jwks`) and the token endpoint
(`/token`, the client-credentials grant, HTTP Basic or form authentication), and signs access tokens of the WLCG
Common JWT Profile with one ES256 key. Who may ask for what is in its clients file (`registry`), written by
`juno-dcs up` from the topology (grid/issuer.py). A site's IAM takes its place by configuration alone
(docs/security.md)."""
