"""Client of the sandbox admin API (``/_sandbox/...``).

Every method raises ``SandboxError`` on a non-2xx answer, except the object
readers and removers (``get``, ``remove`` and the ``lemlist_*``/``leadlex_*``/``dialnexa_*``
helpers), which return ``None`` when the object does not exist.

Object kinds for ``get(vendor, kind, id=None)`` (``id=None`` returns ``{id: object}``):

* ``lemlist``:  ``campaign`` (with ``leads``), ``lead``, ``unsubscribe`` (by value)
* ``leadlex``:  ``campaign`` (with ``contacts`` and ``removed_contacts``)
* ``dialnexa``: ``campaign``, ``lead``, ``agent``
"""

from __future__ import annotations

from urllib.parse import quote

import requests as _requests

from .vendors import vendor_class


class SandboxError(RuntimeError):
    def __init__(self, status, body):
        super().__init__(f"sandbox admin call failed with {status}: {body}")
        self.status = status
        self.body = body


class SandboxClient:
    def __init__(self, base_url: str, timeout: float = 30.0, session=None):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or _requests.Session()

    # ---------------------------------------------------------------- plumbing
    def vendor_url(self, vendor: str) -> str:
        """The base URL a client of that vendor should use, e.g. ``http://127.0.0.1:N/lemlist/api``."""
        return self.base_url + vendor_class(vendor).base_path()

    def _call(self, method, path, json=None, params=None, allow_404=False):
        resp = self.session.request(
            method, f"{self.base_url}/_sandbox/{path}", json=json, params=params, timeout=self.timeout
        )
        if allow_404 and resp.status_code == 404:
            return None
        if not 200 <= resp.status_code < 300:
            try:
                body = resp.json()
            except ValueError:
                body = resp.text
            raise SandboxError(resp.status_code, body)
        return resp.json()

    def close(self) -> None:
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ admin
    def health(self) -> bool:
        return bool(self._call("GET", "health").get("ok"))

    def reset(self, seed=None) -> dict:
        """Clear everything and restore the startup config; then seed.

        ``seed=None`` re-applies the server's startup seed (none for a test
        server); pass ``{}`` to force an empty state.
        """
        return self._call("POST", "reset", json={} if seed is None else {"seed": seed})

    def seed(self, data: dict) -> dict:
        """Merge a seed document (see ``state.py`` and the vendor modules); returns ``{"ok", "counts"}``."""
        return self._call("POST", "seed", json=data)

    def state(self) -> dict:
        return self._call("GET", "state")

    def requests(self, since: int = 0, vendor: str | None = None) -> list:
        """Request-log records with ``seq > since`` (optionally of one vendor)."""
        params = {"since": since}
        if vendor:
            params["vendor"] = vendor
        return self._call("GET", "requests", params=params)["requests"]

    def clear_requests(self) -> None:
        self._call("DELETE", "requests")

    def config(self) -> dict:
        return self._call("GET", "config")

    def configure(self, **cfg) -> dict:
        """Merge config keys: ``limits``, ``latency``, ``faults``, ``keys``, ``log``, ``log_limit`` (see ``config.py``)."""
        return self._call("POST", "config", json=cfg)

    def set_campaign_status(self, vendor, campaign_id, status, after_seconds=None, after_reads=None) -> dict:
        body = {"vendor": vendor, "id": campaign_id, "status": status}
        if after_seconds is not None:
            body["after_seconds"] = after_seconds
        if after_reads is not None:
            body["after_reads"] = after_reads
        return self._call("POST", "campaign-status", json=body)

    def inject(self, vendor: str, script: list, phase: str | None = None) -> int:
        """Queue scripted faults (kinds: see ``config.py``) for the next requests of a vendor; returns the queue length."""
        body = {"vendor": vendor, "script": list(script)}
        if phase is not None:
            body["phase"] = phase
        return self._call("POST", "inject", json=body)["pending"]

    def revoke_key(self, vendor: str, key: str | None = None, after_requests: int | None = None) -> dict:
        """Revoke an API key (default: the vendor's default key), now or after N more authenticated requests.

        Requests with it then get the vendor's 401; ``reset()`` restores it.
        """
        body = {"vendor": vendor}
        if key is not None:
            body["key"] = key
        if after_requests is not None:
            body["after_requests"] = after_requests
        return self._call("POST", "keys/revoke", json=body)

    def clear_faults(self) -> None:
        """Drop every queued scripted fault (random faults: ``configure(faults=None)``)."""
        self._call("DELETE", "inject")

    # ---------------------------------------------------------------- objects
    def get(self, vendor: str, kind: str, id: str | None = None):
        path = f"objects/{quote(vendor, safe='')}/{quote(kind, safe='')}"
        if id is not None:
            path += "/" + quote(id, safe="")
        return self._call("GET", path, allow_404=True)

    def lemlist_campaign(self, campaign_id):
        return self.get("lemlist", "campaign", campaign_id)

    def lemlist_lead(self, lead_id):
        return self.get("lemlist", "lead", lead_id)

    def remove(self, vendor: str, kind: str, id: str):
        """Delete an object as the vendor might on its side; returns it, or None if missing."""
        path = f"objects/{quote(vendor, safe='')}/{quote(kind, safe='')}/{quote(id, safe='')}"
        return self._call("DELETE", path, allow_404=True)

    def lemlist_unsubscribes(self) -> dict:
        """``{lowercased value: record}``, in the order the records were added."""
        return self.get("lemlist", "unsubscribe") or {}

    def add_lemlist_unsubscribes(self, records: list) -> list[dict]:
        """Add team-wide suppression records as lemlist itself would (a person's unsubscribe
        click: source ``lead``; a bounce: ``bounced``; ...), at the end of the creation order.

        Each item is a value or ``{"value", "source"?, "createdAt"?}``; returns the stored
        records (``_id`` included) in the same order.
        """
        self.seed({"lemlist": {"unsubscribes": list(records)}})
        stored = self.lemlist_unsubscribes()
        values = [r if isinstance(r, str) else r["value"] for r in records]
        return [stored[v.lower()] for v in values]

    def remove_lemlist_unsubscribe(self, value: str):
        """Remove a suppression record whatever its source (later records move to lower offsets)."""
        return self.remove("lemlist", "unsubscribe", value)

    def leadlex_campaign(self, campaign_id):
        return self.get("leadlex", "campaign", campaign_id)

    def dialnexa_campaign(self, campaign_id):
        return self.get("dialnexa", "campaign", campaign_id)

    def dialnexa_lead(self, lead_id):
        return self.get("dialnexa", "lead", lead_id)
