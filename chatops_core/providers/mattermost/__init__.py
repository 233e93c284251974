"""Mattermost provider package.

It holds, so far, the calls to a Mattermost server and how its failures read in the
service's terms: :mod:`.client` (a typed client for REST API v4 under ``/api/v4`` and for
slash-command ``response_url`` posts) and :mod:`.errors` (Mattermost's error answers and
transport failures mapped onto :mod:`chatops_core.errors`, plus the few refusals of its own
the provider reacts to). Nothing outside this package needs to know a Mattermost path,
header or error id.
"""
