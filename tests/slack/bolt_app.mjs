// An unmodified Slack app built with Bolt in HTTP mode (its receiver checks every request's
// signature and timestamp), pointed at Concord only through `clientOptions.slackApiUrl`.
// Concord is given its URL, http://127.0.0.1:<port>/slack/events, as the bot's request URL
// and as its slash command's URL, as one would in Slack's app settings.
//
// It answers `/deploy <what>`: acknowledges at once with text (shown to the person alone),
// answers in the channel through the command's `response_url` (`respond`), posts with `say`
// (chat.postMessage) and sends the person an ephemeral message (chat.postEphemeral). It
// reacts to an `app_mention` with :eyes:. `/release <version>` posts a message with a button
// and a menu, and the app handles their presses (`block_actions`).
//
// Usage: node bolt_app.mjs '<json config>'   config: { api, token, signingSecret }
// Prints {"listening": <port>} first, then one JSON line per handled request:
//   {"command": {...the payload...}, "done": true}, {"mention": {...event...}, "done": true}
//   or {"action": {...the block_actions payload...}, "done": true}
//   {"error": "..."} when a listener failed.
import { App, LogLevel } from '@slack/bolt';

const cfg = JSON.parse(process.argv[2] || '{}');
const print = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

const app = new App({
  token: cfg.token,
  signingSecret: cfg.signingSecret,
  clientOptions: { slackApiUrl: cfg.api, retryConfig: { retries: 0 } },
  logLevel: LogLevel.ERROR,
});

app.command('/deploy', async ({ command, ack, respond, say, client }) => {
  await ack(`Deploying ${command.text}…`);
  await respond({ response_type: 'in_channel', text: `Deployed *${command.text}*` });
  await say(`${command.text} is live`);
  await client.chat.postEphemeral({ channel: command.channel_id, user: command.user_id, text: 'Only you see this' });
  print({ command, done: true });
});

// `/release <version>` posts a message with blocks: a header, a section, and buttons and a
// menu whose presses come back as `block_actions`.
app.command('/release', async ({ command, ack, say }) => {
  await ack();
  await say({
    text: `Release ${command.text}?`,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: `Release ${command.text}` } },
      { type: 'section', text: { type: 'mrkdwn', text: `Ship *${command.text}* to production?` } },
      {
        type: 'actions',
        block_id: 'release',
        elements: [
          { type: 'button', action_id: 'approve', style: 'primary', value: command.text, text: { type: 'plain_text', text: 'Approve' } },
          {
            type: 'static_select',
            action_id: 'env',
            placeholder: { type: 'plain_text', text: 'Environment' },
            options: [
              { text: { type: 'plain_text', text: 'Staging' }, value: 'staging' },
              { text: { type: 'plain_text', text: 'Production' }, value: 'production' },
            ],
          },
        ],
      },
    ],
  });
  print({ command, done: true });
});

// A press of Approve: replaces the message through the action's `response_url`.
app.action('approve', async ({ ack, body, action, respond }) => {
  await ack();
  await respond({ replace_original: true, text: `Approved ${action.value} by <@${body.user.id}>` });
  print({ action: body, done: true });
});

// A pick in the menu: edits the message with chat.update, keeping a block.
app.action('env', async ({ ack, body, action, client }) => {
  await ack();
  await client.chat.update({
    channel: body.channel.id,
    ts: body.message.ts,
    text: `Going to ${action.selected_option.value}`,
    blocks: [{ type: 'section', text: { type: 'mrkdwn', text: `Going to *${action.selected_option.value}*` } }],
  });
  print({ action: body, done: true });
});

app.event('app_mention', async ({ event, client }) => {
  await client.reactions.add({ channel: event.channel, timestamp: event.ts, name: 'eyes' });
  print({ mention: event, done: true });
});

app.error(async (error) => {
  print({ error: String(error?.message ?? error) });
});

const server = await app.start(0);
print({ listening: server.address().port });
