// Reads a Teams workflow message (the teams format's body) on stdin and
// checks it as a Teams workflow and Microsoft's own Adaptive Cards library
// read it: one attachment of type application/vnd.microsoft.card.adaptive
// whose content the adaptivecards package parses with no warning and
// validates with no failure. Prints a JSON report; exits 1 on any problem.
// The package's dist build needs no DOM for parsing and validation.
const AC = require("adaptivecards/dist/adaptivecards.js");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (c) => (input += c));
process.stdin.on("end", () => {
  const problems = [];
  let msg;
  try {
    msg = JSON.parse(input);
  } catch (e) {
    problems.push("not JSON: " + e.message);
  }
  let card = null;
  if (msg) {
    if (msg.type !== "message") problems.push('type is not "message"');
    if (!Array.isArray(msg.attachments) || msg.attachments.length !== 1) {
      problems.push("want exactly one attachment");
    } else {
      const a = msg.attachments[0];
      if (a.contentType !== "application/vnd.microsoft.card.adaptive") problems.push("contentType " + a.contentType);
      card = a.content;
    }
  }
  const report = { problems, version: null, elements: 0, actions: 0 };
  if (card) {
    const c = new AC.AdaptiveCard();
    const ctx = new AC.SerializationContext();
    c.parse(card, ctx);
    for (let i = 0; i < ctx.eventCount; i++) {
      const e = ctx.getEventAt(i);
      problems.push("parse: " + e.message);
    }
    const v = c.validateProperties();
    for (const e of v.validationEvents) {
      problems.push("validate: " + e.message);
    }
    if (card.type !== "AdaptiveCard") problems.push("content.type is not AdaptiveCard");
    report.version = c.version ? c.version.toString() : null;
    report.elements = c.getItemCount();
    report.actions = c.getActionCount();
    report.texts = [];
    for (let i = 0; i < c.getItemCount(); i++) {
      const it = c.getItemAt(i);
      if (it instanceof AC.TextBlock) report.texts.push(it.text);
    }
    report.urls = [];
    for (let i = 0; i < c.getActionCount(); i++) {
      const a = c.getActionAt(i);
      if (a instanceof AC.OpenUrlAction) report.urls.push(a.url);
    }
  }
  process.stdout.write(JSON.stringify(report) + "\n");
  process.exit(problems.length ? 1 : 0);
});
