"""Push and SMS templates, on both backends: publishing over REST and gRPC, versions, locale
fallback, the length limits (a 400 naming the part, nothing stored), and
``render_push``/``render_sms`` as the delivery workers call them."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from notify.v1 import template_pb2 as pb
from notify.v1 import template_pb2_grpc

from notify_core.errors import InvalidArgument
from template_svc.templates import PushContent, SmsContent, Templates
from tests.support.ids import uid
from tests.support.nodes import Env

NOTIFICATION = {"id": "n1", "type": "order", "title": "Own title", "message": "Own message"}


async def put(env: Env, name: str, channel: str, **body: Any) -> dict[str, Any]:
    r = await env.http.put(f"/templates/{name}/{channel}", json=body, headers=env.producer)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


async def versions(env: Env, name: str, channel: str, locale: str = "") -> list[int]:
    r = await env.http.get(
        f"/templates/{name}/{channel}/versions", params={"locale": locale}, headers=env.producer
    )
    assert r.status_code == 200, r.text
    return [v["version"] for v in r.json()["versions"]]


def templates_of(env: Env) -> Templates:
    templates = env.node.templates
    assert templates is not None
    return templates


async def test_push_renders_the_latest_version_of_the_nearest_locale(env: Env) -> None:
    templates, name = templates_of(env), uid("tpl")
    first = await put(env, name, "push", subject="Old {{ n }}", body="old")
    second = await put(env, name, "push", subject="Order  {{ n }}\n shipped", body="Track {{ n }}")
    await put(env, name, "push", locale="fr", subject="Commande {{ n }}", body="Suivi {{ n }}")
    assert (first["version"], second["version"]) == (1, 2)
    assert second["subject"] == "Order  {{ n }}\n shipped"
    assert await versions(env, name, "push") == [1, 2]

    push = await templates.render_push(name, "de-AT", {"n": 7}, NOTIFICATION)
    assert push == PushContent(title="Order 7 shipped", body="Track 7")
    push = await templates.render_push(name, "fr_CA", {"n": 7}, NOTIFICATION)
    assert push == PushContent(title="Commande 7", body="Suivi 7")

    r = await env.http.delete(f"/templates/{name}/push?locale=fr", headers=env.producer)
    assert r.status_code == 200, r.text
    push = await templates.render_push(name, "fr-CA", {"n": 7}, NOTIFICATION)
    assert push == PushContent(title="Order 7 shipped", body="Track 7")


async def test_sms_renders_the_latest_version_of_the_nearest_locale(env: Env) -> None:
    templates, name = templates_of(env), uid("tpl")
    await put(env, name, "sms", body="Code {{ code }}")
    await put(env, name, "sms", locale="pt", body="Código {{ code }}")
    await put(env, name, "sms", locale="pt-BR", body="v1")
    latest = await put(
        env, name, "sms", locale="pt_BR", body="\n  Seu código: {{ code }}\n", variables=["code"]
    )
    assert (latest["version"], latest["locale"]) == (2, "pt-BR")

    assert await templates.render_sms(name, "pt-BR", {"code": 42}, NOTIFICATION) == SmsContent(
        body="Seu código: 42"
    )
    assert await templates.render_sms(name, "pt-PT", {"code": 42}, NOTIFICATION) == SmsContent(
        body="Código 42"
    )
    assert await templates.render_sms(name, None, {"code": 42}, NOTIFICATION) == SmsContent(
        body="Code 42"
    )
    r = await env.http.post(
        "/templates/render",
        json={"name": name, "channel": "sms", "locale": "pt-BR", "data": {"code": 42}},
        headers=env.producer,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["body"], r.json()["subject"]) == ("Seu código: 42", None)


async def test_without_a_template_for_the_channel_render_answers_none(env: Env) -> None:
    templates, name = templates_of(env), uid("tpl")
    await put(env, name, "email", subject="S", body="<p>only email</p>")
    await put(env, name, "sms", locale="fr", body="seulement en français")
    assert await templates.render_push(name, "fr", {}, NOTIFICATION) is None
    assert await templates.render_push(None, "fr", {}, NOTIFICATION) is None
    assert await templates.render_push("", None, None, NOTIFICATION) is None
    assert await templates.render_sms(name, "de", {}, NOTIFICATION) is None  # fr is no fallback
    assert await templates.render_sms(uid("tpl"), None, {}, NOTIFICATION) is None

    r = await env.http.delete(f"/templates/{name}/sms?locale=fr", headers=env.producer)
    assert r.status_code == 200, r.text
    assert await templates.render_sms(name, "fr", {}, NOTIFICATION) is None


async def test_a_push_template_without_a_title_takes_the_notifications(env: Env) -> None:
    templates, name = templates_of(env), uid("tpl")
    await put(env, name, "push", body="{{ notification.message }} ({{ n }})")
    push = await templates.render_push(name, None, {"n": 2}, NOTIFICATION)
    assert push == PushContent(title="Own title", body="Own message (2)")


async def test_a_push_or_sms_that_cannot_render_raises_naming_the_field(env: Env) -> None:
    templates, name = templates_of(env), uid("tpl")
    await put(env, name, "push", subject="{{ who.name }}", body="b")
    await put(env, name, "sms", body="{% if urgent %}Now!{% endif %}\n")
    with pytest.raises(InvalidArgument) as info:
        await templates.render_push(name, None, {"who": {}}, NOTIFICATION)
    assert info.value.field == "data.who.name"
    with pytest.raises(InvalidArgument) as info:
        await templates.render_sms(name, None, {"urgent": False}, NOTIFICATION)
    assert info.value.field == "body" and "empty sms message" in info.value.message
    assert await templates.render_sms(name, None, {"urgent": True}, NOTIFICATION) == SmsContent(
        body="Now!"
    )


@pytest.mark.parametrize(
    ("channel", "body", "field", "limit"),
    [
        ("push", {"subject": "t" * 101, "body": "b"}, "subject", 100),
        ("push", {"subject": "t", "body": "b" * 1_001}, "body", 1_000),
        ("sms", {"body": "b" * 1_601}, "body", 1_600),
        ("sms", {"subject": "t", "body": "b"}, "subject", None),
    ],
)
async def test_over_long_parts_are_400s_naming_the_field_and_nothing_is_stored(
    env: Env, channel: str, body: dict[str, Any], field: str, limit: int | None
) -> None:
    name = uid("tpl")
    await put(env, name, channel, body="v1")
    r = await env.http.put(f"/templates/{name}/{channel}", json=body, headers=env.producer)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_argument"
    assert error["message"].startswith(f"{field}: ")
    if limit is not None:
        assert f"at most {limit} characters" in error["message"]
    assert await versions(env, name, channel) == [1]
    assert (await put(env, name, channel, body="v2"))["version"] == 2

    preview = {"channel": channel, "template": body}
    r = await env.http.post("/templates/render", json=preview, headers=env.producer)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"].startswith(f"template.{field}: ")


async def test_grpc_push_and_sms_publish_fallback_render_and_limits(env: Env) -> None:
    stub = template_pb2_grpc.TemplateServiceStub(env.grpc_channel)
    md, name = env.metadata, uid("tpl")
    push, sms = pb.TEMPLATE_CHANNEL_PUSH, pb.TEMPLATE_CHANNEL_SMS
    published = await stub.PublishTemplate(
        pb.PublishTemplateRequest(
            name=name, channel=push, locale="es", subject="Hola {{ who }}", body=" Pedido "
        ),
        metadata=md,
    )
    assert (published.template.version, published.template.subject) == (1, "Hola {{ who }}")
    got = await stub.GetTemplate(
        pb.GetTemplateRequest(name=name, channel=push, locale="es-MX", fallback=True), metadata=md
    )
    assert (got.template.locale, got.template.channel) == ("es", push)
    render = pb.RenderTemplateRequest(name=name, channel=push, locale="es-MX")
    render.data.update({"who": "Ana"})
    out = await stub.RenderTemplate(render, metadata=md)
    assert (out.subject, out.body, out.text) == ("Hola Ana", "Pedido", "Pedido")

    too_long = [
        pb.PublishTemplateRequest(name=name, channel=push, subject="t" * 101, body="b"),
        pb.PublishTemplateRequest(name=name, channel=push, body="b" * 1_001),
        pb.PublishTemplateRequest(name=name, channel=sms, body="b" * 1_601),
        pb.PublishTemplateRequest(name=name, channel=sms, subject="t", body="b"),
    ]
    for request, field in zip(too_long, ["subject", "body", "body", "subject"], strict=True):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.PublishTemplate(request, metadata=md)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details().startswith(f"{field}: ")
    for channel in (push, sms):
        listed = await stub.ListTemplateVersions(
            pb.ListTemplateVersionsRequest(name=name, channel=channel), metadata=md
        )
        assert list(listed.templates) == []
