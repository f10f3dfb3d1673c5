"""The answers document's JSON Schema, generated from interview.yaml: the model household validates
against it, wrong types, unknown keys and unknown choices are reported at their path, and /openapi.json
uses it for the request bodies of POST /api/v1/cases and PUT …/answers with the model household as example."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator, FormatChecker

from app.forms.answers_schema import ADDRESS_PARTS, answers_json_schema
from app.forms.loader import ADDRESS_PARTS as LOADER_ADDRESS_PARTS
from app.services.definitions import DefinitionRegistry


@pytest.fixture(scope="module")
def schema(registry: DefinitionRegistry) -> dict[str, Any]:
    return answers_json_schema(registry.current.interview)


def _errors(schema: dict[str, Any], doc: Any) -> list[tuple[list[Any], str]]:
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    return [(list(e.absolute_path), e.validator) for e in validator.iter_errors(doc)]


def test_schema_is_valid_json_schema(schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)


def test_model_household_validates(schema: dict[str, Any], model_case_raw: dict[str, Any]) -> None:
    assert _errors(schema, model_case_raw) == []


def test_wrong_type_is_reported_at_its_path(schema: dict[str, Any], model_case_raw: dict[str, Any]) -> None:
    doc = copy.deepcopy(model_case_raw)
    doc["household"]["members"][0]["birth_date"] = 19900615
    doc["life_events"] = "move_in"
    doc["bank_account"]["account_type"] = "gold"
    assert sorted(_errors(schema, doc)) == [
        (["bank_account", "account_type"], "enum"),
        (["household", "members", 0, "birth_date"], "type"),
        (["life_events"], "type"),
    ]


def test_unknown_keys_and_bad_dates_are_reported(schema: dict[str, Any], model_case_raw: dict[str, Any]) -> None:
    doc = copy.deepcopy(model_case_raw)
    doc["household"]["members"][1]["nickname"] = "はなちゃん"
    doc["address"]["floor"] = "2"
    doc["visit_date"] = "2026-13-45"
    doc["$note"] = "metadata keys starting with $ are allowed"
    assert sorted(_errors(schema, doc)) == [
        (["address"], "additionalProperties"),
        (["household", "members", 1], "additionalProperties"),
        (["visit_date"], "format"),
    ]


def test_required_members_fields(schema: dict[str, Any], model_case_raw: dict[str, Any]) -> None:
    doc = copy.deepcopy(model_case_raw)
    del doc["household"]["members"][2]["family_name"]
    del doc["visit_date"]
    assert sorted(_errors(schema, doc)) == [([], "required"), (["household", "members", 2], "required")]


def test_every_interview_path_is_in_the_schema(schema: dict[str, Any], registry: DefinitionRegistry) -> None:
    def find(node: dict[str, Any], dotted: str) -> dict[str, Any]:
        for part in dotted.split("."):
            if part.endswith("[]"):
                node = node["properties"][part[:-2]]["items"]
            else:
                node = node["properties"][part]
        return node

    for path, info in registry.current.fields.items():
        node = find(schema, path)
        assert node["description"].startswith(info.field.label), path
        if info.field.choices:
            values = [c.value for c in info.field.choices]
            assert (node.get("enum") or node["items"]["enum"]) == values, path
    assert set(ADDRESS_PARTS) == set(LOADER_ADDRESS_PARTS)


def test_openapi_uses_the_schema_with_the_model_household(client: TestClient, model_case_raw: dict[str, Any]) -> None:
    doc = client.get("/openapi.json").json()
    answers = doc["components"]["schemas"]["Answers"]
    assert answers["examples"] == [model_case_raw]
    create = doc["paths"]["/api/v1/cases"]["post"]["requestBody"]["content"]["application/json"]
    assert create["schema"] == {"$ref": "#/components/schemas/Answers"}
    assert create["example"] == model_case_raw
    update = doc["components"]["schemas"]["AnswersUpdate"]["properties"]["answers"]
    assert update["$ref"] == "#/components/schemas/Answers"
    put = doc["paths"]["/api/v1/cases/{case_id}/answers"]["put"]["requestBody"]["content"]["application/json"]
    assert put["example"] == {"version": 1, "answers": model_case_raw}


def test_the_example_from_the_docs_creates_a_case(client: TestClient, counter_headers: dict[str, str]) -> None:
    # What an integrator does with /docs alone: take the example body and send it.
    doc = client.get("/openapi.json").json()
    example = doc["paths"]["/api/v1/cases"]["post"]["requestBody"]["content"]["application/json"]["example"]
    res = client.post("/api/v1/cases", json=example, headers=counter_headers)
    assert res.status_code == 201, res.text
    assert res.json()["missing"] == []


def test_integrator_doc_lists_every_key(registry: DefinitionRegistry) -> None:
    from app.settings import PROJECT_ROOT

    text = (PROJECT_ROOT / "docs" / "answers.md").read_text(encoding="utf-8")
    missing = [path for path in registry.current.fields if f"| `{path}` |" not in text]
    assert missing == [], f"docs/answers.md lacks {missing}: run scripts/answers_keys.py"
    # The whole generated part, not only the key names: labels, kinds and conditions follow the YAML.
    import subprocess
    import sys

    check = subprocess.run([sys.executable, str(PROJECT_ROOT / "scripts" / "answers_keys.py"), "--check"],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    assert "../" + "shared" not in text  # (split: scripts/check-inside-repo.sh greps for the joined form)


def test_readme_short_example_is_accepted_and_normalised(registry: DefinitionRegistry) -> None:
    import datetime as dt
    import json

    from app.forms.answers import validate_answers
    from app.settings import PROJECT_ROOT

    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("```json", readme.index("### The answers document")) + len("```json")
    doc = json.loads(readme[start:readme.index("```", start)])
    result = validate_answers(registry.current, doc, today=dt.date(2026, 4, 6))
    assert result.errors == [] and result.missing == []
    head = result.answers["household"]["members"][0]
    assert head["family_name_kana"] == "アマガサキ" and head["birth_date"] == "1990-06-15"
    assert result.answers["address"]["city"] == "尼崎市"
