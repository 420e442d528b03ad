"""Contract: conversation references, class choice, token caches and user profiles."""

from __future__ import annotations

from datetime import UTC

from storage import Store
from storage.records import UserProfile
from tests.storage.samples import BERLIN_WINTER, T0, TENANT, at, conversation


async def test_conversation_round_trips_every_field(store: Store) -> None:
    record = conversation(
        "19:General@thread.tacv2",
        kind="channel",
        user_aad_id=None,
        team_id="19:General@thread.tacv2",
        class_id="class-Ω",
        updated_at=T0.astimezone(BERLIN_WINTER),
    )

    await store.save_conversation(record)
    loaded = await store.get_conversation(record.conversation_id)

    assert loaded == record
    assert loaded is not None and loaded.updated_at.tzinfo == UTC
    assert loaded.reference["user"]["name"] == "Ms. Zoë Ångström-Ōtsuka 👩‍🏫"
    assert await store.get_conversation("a:unknown") is None


async def test_save_conversation_replaces_the_stored_one(store: Store) -> None:
    await store.save_conversation(conversation("a:1", class_id="class-1"))
    newer = conversation("a:1", service_url="https://smba.trafficmanager.net/amer/", class_id=None, updated_at=at(5))

    await store.save_conversation(newer)

    assert await store.get_conversation("a:1") == newer


async def test_personal_conversation_is_the_newest_personal_chat_of_that_user(store: Store) -> None:
    await store.save_conversation(conversation("a:old", updated_at=at(1)))
    await store.save_conversation(conversation("a:new", updated_at=at(9)))
    await store.save_conversation(conversation("a:middle", updated_at=at(5)))
    await store.save_conversation(conversation("19:group@thread.v2", kind="groupChat", updated_at=at(20)))
    await store.save_conversation(conversation("a:other", user_aad_id="teacher-2", updated_at=at(30)))

    found = await store.personal_conversation("teacher-1")

    assert found is not None and found.conversation_id == "a:new"
    assert await store.personal_conversation("nobody") is None


async def test_class_choice_is_per_conversation_and_can_change(store: Store) -> None:
    assert await store.get_class_choice("a:1") is None

    await store.set_class_choice("a:1", "class-1", at(0))
    await store.set_class_choice("a:2", "class-2", at(0))
    await store.set_class_choice("a:1", "class-3", at(1))

    assert await store.get_class_choice("a:1") == "class-3"
    assert await store.get_class_choice("a:2") == "class-2"


async def test_token_cache_blobs_are_stored_byte_for_byte(store: Store) -> None:
    blob = bytes(range(256)) * 40

    assert await store.load_token_cache("tenant/teacher-1") is None
    await store.save_token_cache("tenant/teacher-1", blob, at(0))
    assert await store.load_token_cache("tenant/teacher-1") == blob

    await store.save_token_cache("tenant/teacher-1", b"\x00rotated", at(1))
    assert await store.load_token_cache("tenant/teacher-1") == b"\x00rotated"

    assert await store.delete_token_cache("tenant/teacher-1") is True
    assert await store.delete_token_cache("tenant/teacher-1") is False
    assert await store.load_token_cache("tenant/teacher-1") is None


async def test_user_profile_round_trips_and_is_replaced(store: Store) -> None:
    bare = UserProfile("teacher-1", TENANT, upn=None, timezone=None, updated_at=at(0))
    await store.save_user_profile(bare)
    assert await store.get_user_profile("teacher-1") == bare

    full = UserProfile(
        "teacher-1",
        TENANT,
        upn="zoë.ångström@school.example",
        timezone="Asia/Kolkata",
        updated_at=at(3),
        teams_id="29:1a2b-teacher",
        service_url="https://smba.trafficmanager.net/emea/",
    )
    await store.save_user_profile(full)

    assert await store.get_user_profile("teacher-1") == full
    assert await store.get_user_profile("teacher-2") is None
