// Registration behind --registration-token, password login, and access tokens that outlive a
// restart.

import assert from "node:assert/strict";
import { apiClient, PASSWORD, registerUser } from "../lib/clients.mjs";
import { scenario } from "../lib/scenario.mjs";

const TOKEN = "hearth-test-token";

scenario(
  "registration needs the token; login and tokens work across a restart",
  async (node) => {
    // Without the token no offered flow can be completed; a wrong token is refused.
    await assert.rejects(registerUser(node.baseUrl, "mallory"), /no registration flow we can complete/);
    await assert.rejects(registerUser(node.baseUrl, "mallory", { registrationToken: "wrong" }));

    const carol = await registerUser(node.baseUrl, "carol", { registrationToken: TOKEN });
    assert.equal(carol.userId, `@carol:${node.serverName}`);
    await assert.rejects(
      registerUser(node.baseUrl, "carol", { registrationToken: TOKEN }),
      (err) => err.errcode === "M_USER_IN_USE",
    );

    const login = () =>
      apiClient(node.baseUrl).loginRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: "carol" },
        password: PASSWORD,
      });
    const loggedIn = await login();
    assert.equal(loggedIn.user_id, carol.userId);
    assert.notEqual(loggedIn.device_id, carol.deviceId, "a login is a new device");
    await assert.rejects(
      apiClient(node.baseUrl).loginRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: "carol" },
        password: "wrong",
      }),
      (err) => err.httpStatus === 403 && err.errcode === "M_FORBIDDEN",
    );

    await node.restart();
    // Both sessions' access tokens still work, each for its own device.
    for (const [token, deviceId] of [
      [carol.accessToken, carol.deviceId],
      [loggedIn.access_token, loggedIn.device_id],
    ]) {
      const who = await apiClient(node.baseUrl, { accessToken: token }).whoami();
      assert.equal(who.user_id, carol.userId);
      assert.equal(who.device_id, deviceId);
    }
    assert.equal((await login()).user_id, carol.userId);
  },
  { node: { registrationToken: TOKEN } },
);
