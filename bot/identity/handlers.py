"""Identity in a turn: the gate the router asks for tokens and sign-in links, the `signout` command and the
sign-in button's verb."""

from __future__ import annotations

from bot.identity.accounts import TeacherIdentity
from bot.identity.sign_in import SignInPages
from bot.kernel.router import Context, Router
from bot.kernel.turn import CardReply, Reply, SignInReply
from bot.school.service import EducationService
from cards.general import SignInAction, signed_out_card


class IdentityHandlers:
    """What bot.kernel.router.Gate asks: tokens from the accounts, links and codes from the sign-in pages."""

    def __init__(self, accounts: TeacherIdentity, pages: SignInPages, education: EducationService) -> None:
        self._accounts = accounts
        self._education = education
        self.provider = accounts.provider
        self.exchange_once = accounts.exchange_once
        self.sso_resource = accounts.sso_resource
        self.sign_in_url = pages.sign_in_url
        self.verify_sign_in = pages.verify

    def register(self, router: Router) -> None:
        router.command("signout", self.sign_out)
        router.action(SignInAction, self.sign_in)

    async def sign_out(self, context: Context, _: str) -> Reply:
        await self._accounts.sign_out(context.teacher.tenant_id, context.teacher.aad_object_id)
        self._education.forget_lists(context.teacher)
        return CardReply(signed_out_card())

    async def sign_in(self, context: Context, _: SignInAction) -> Reply:
        caller = context.turn.caller
        return SignInReply(self.sign_in_url(caller.tenant_id, caller.aad_object_id))
