"""The Prefect UI of the sandbox's ``prefect server start``, driven by headless Debian chromium over the
Chrome DevTools Protocol: open the ``release/registry`` deployment's custom run form (rendered from the
flow's pydantic parameters), fill model and version, submit, and find the flow run with those parameters."""

from __future__ import annotations

import json

import pytest

from tests.e2e.cdp import Page, chromium
from tests.e2e.registry_support import delete_runs, prefect_api, release_runs, sandbox_services, unique, wait_for

pytestmark = pytest.mark.e2e  # Debian chromium: `make setup` installs it; a missing browser fails, never skips

FILL = """(() => {
  const wanted = %s;
  const filled = [];
  for (const el of document.querySelectorAll('input,textarea')) {
    let n = el, label = '';
    for (let i = 0; i < 6 && n; i++) {
      n = n.parentElement;
      const l = n && n.querySelector('label');
      if (l && l.innerText.trim()) { label = l.innerText.trim(); break; }
    }
    if (!(label in wanted)) continue;
    const proto = el.tagName === 'TEXTAREA' ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
    Object.getOwnPropertyDescriptor(proto, 'value').set.call(el, String(wanted[label]));
    el.dispatchEvent(new Event('input', {bubbles: true}));
    el.dispatchEvent(new Event('change', {bubbles: true}));
    filled.push(label);
  }
  return filled;
})()"""

SUBMIT = """(() => {
  const b = Array.from(document.querySelectorAll('button[type=submit]')).find(b => b.innerText.trim() === 'Submit');
  if (!b) return false;
  b.click();
  return true;
})()"""


@pytest.fixture(scope="module")
def release_deployment():
    with sandbox_services("prefect") as env, prefect_api(env["PREFECT_API_URL"]):
        from prefect.client.orchestration import get_client

        from configs.release import concurrency_limit_name, load_releases
        from tasks import prefect_admin

        prefect_admin.sync(prefect_admin.load_project(),
                           limits={concurrency_limit_name(m): 1 for m in load_releases()},
                           blocks_env=None, dry_run=False)
        with get_client(sync_client=True) as client:
            yield env["PREFECT_API_URL"], client.read_deployment_by_name("release/registry")


def test_custom_run_form_starts_a_release_with_typed_parameters(release_deployment, tmp_path):
    api, deployment = release_deployment
    ui = api.removesuffix("/api")
    model = unique("ui-model")
    with chromium() as devtools:
        page = Page(devtools)
        try:
            page.goto(f"{ui}/deployments/deployment/{deployment.id}/run")
            page.wait("document.querySelectorAll('textarea').length > 0", 120, "the custom run form")
            page.wait("Array.from(document.querySelectorAll('button[type=submit]')).length > 0", 60, "Submit")
            # The form is a Vue component that may still be mounting when the first fields appear: fill and
            # submit until the UI confirms the run ("... scheduled to start now"), at most a few times.
            for _attempt in range(5):
                filled = page.eval(FILL % json.dumps({"Model": model, "Version": 7}))
                assert sorted(filled) == ["Model", "Version"]
                assert page.eval(SUBMIT)
                try:
                    page.wait("document.body.innerText.includes('scheduled to start')", 20, "run confirmation")
                    break
                except AssertionError:
                    continue
            else:
                raise AssertionError("the UI never confirmed the run")
        finally:
            page.screenshot(str(tmp_path / "ui.png"))
            page.close()
    runs = wait_for(lambda: release_runs(model), 60, "the flow run created from the UI")
    assert len(runs) == 1
    request = runs[0].parameters["request"]
    assert request["model"] == model
    assert request["version"] == 7 and isinstance(request["version"], int)
    assert runs[0].deployment_id == deployment.id
    delete_runs(runs)
