"""Tokens of the WLCG Common JWT Profile: scopes and their paths (`scopes`), checking a bearer token against its
issuer's keys (`verify`), and getting one with a client's credentials (`fetch`). The issuer itself is
`juno_dcs.issuer`; docs/security.md says who holds which token."""
