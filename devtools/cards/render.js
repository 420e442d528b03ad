// Lay out Adaptive Cards on one HTML page, drawn by Microsoft's renderer (npm adaptivecards, with markdown-it) with a
// Microsoft Teams (light theme) host config, for headless Chromium to screenshot (tests/docs/pictures.py does that and cuts it up).
// usage: node devtools/cards/render.js CARDS.json PAGE.html       CARDS.json: {"name": card, ...}
// When laid out, the page's title is JSON: {"warnings": {name: [parse warning, ...]}, "boxes": {name: [x, y, w, h]},
// "size": [width, height]} — every box in whole pixels, so a card's picture does not depend on the cards before it.
'use strict';
const fs = require('fs');
const path = require('path');

const [cardsFile, pageFile] = process.argv.slice(2);
if (!pageFile) {
  console.error('usage: node render.js CARDS.json PAGE.html');
  process.exit(2);
}
const cards = JSON.parse(fs.readFileSync(cardsFile, 'utf8'));
const read = (module, file, encoding) =>
  fs.readFileSync(path.join(path.dirname(require.resolve(`${module}/package.json`)), file), encoding);

// Teams draws cards in Segoe UI, which cannot be installed here; Open Sans (bundled, so every machine draws the same
// pixels) is the closest freely licensed humanist sans. Weights: Teams' lighter 200 (300 is Open Sans' lightest),
// default 400, bolder 600.
const fontFaces = [300, 400, 600]
  .map((weight) => {
    const woff2 = read('@fontsource/open-sans', `files/open-sans-latin-${weight}-normal.woff2`).toString('base64');
    return `@font-face{font-family:"Open Sans";font-weight:${weight};src:url(data:font/woff2;base64,${woff2}) format("woff2")}`;
  })
  .join('\n');

// Microsoft Teams' light theme, from the Adaptive Cards designer's Teams host config.
const colors = {
  default: { default: '#ff252424', subtle: '#bf252424' },
  dark: { default: '#252424', subtle: '#bf252424' },
  light: { default: '#ffffff', subtle: '#fff3f2f1' },
  accent: { default: '#6264a7', subtle: '#8b8cc7' },
  good: { default: '#92c353', subtle: '#e592c353' },
  warning: { default: '#f8d22a', subtle: '#e5f8d22a' },
  attention: { default: '#c4314b', subtle: '#e5c4314b' },
};
const backgrounds = {
  default: '#ffffff', emphasis: '#fff9f8f7', accent: '#C7DEF9', good: '#CCFFCC', attention: '#FFC5B2', warning: '#FFE2B2',
};
const font = (family) => ({
  fontFamily: family,
  fontSizes: { small: 12, default: 14, medium: 14, large: 18, extraLarge: 24 },
  fontWeights: { lighter: 200, default: 400, bolder: 600 },
});
const hostConfig = {
  supportsInteractivity: true,
  choiceSetInputValueSeparator: ',',
  spacing: { small: 8, default: 12, medium: 16, large: 20, extraLarge: 24, padding: 16 },
  separator: { lineThickness: 1, lineColor: '#EEEEEE' },
  imageSizes: { small: 32, medium: 52, large: 100 },
  fontTypes: { default: font('"Open Sans", sans-serif'), monospace: font('"DejaVu Sans Mono", monospace') },
  containerStyles: Object.fromEntries(
    Object.entries(backgrounds).map(([style, backgroundColor]) => [style, { backgroundColor, foregroundColors: colors }]),
  ),
  actions: {
    maxActions: 6, spacing: 'Default', buttonSpacing: 8, actionsOrientation: 'Horizontal', actionAlignment: 'Left',
    showCard: { actionMode: 'Inline', inlineTopMargin: 16, style: 'emphasis' }, preExpandSingleShowCardAction: false,
  },
  adaptiveCard: { allowCustomStyle: false },
  factSet: {
    title: { size: 'Default', color: 'Default', isSubtle: false, weight: 'Bolder', wrap: true },
    value: { size: 'Default', color: 'Default', isSubtle: false, weight: 'Default', wrap: true },
    spacing: 16,
  },
};

// Teams' buttons and inputs (Fluent UI): outlined buttons, the positive one filled, the destructive one red.
const teamsCss = `
body{margin:0;background:#f5f5f5;font-family:"Open Sans",sans-serif}
.card{position:absolute;width:500px;background:#fff;border-radius:6px;box-shadow:0 1px 2px rgba(0,0,0,.14)}
.ac-pushButton{font-family:"Open Sans",sans-serif;font-size:14px;font-weight:600;min-height:32px;padding:4px 12px;
  border-radius:4px;background:#fff;color:#242424;border:1px solid #d1d1d1}
.ac-pushButton.style-positive{background:#5b5fc7;color:#fff;border-color:#5b5fc7}
.ac-pushButton.style-destructive{background:#fff;color:#c4314b;border-color:#c4314b}
.ac-pushButton.expandable:after{content:"";display:inline-block;width:5px;height:5px;margin:0 2px 3px 8px;
  border-right:1.5px solid;border-bottom:1.5px solid;transform:rotate(45deg)}
.ac-input{font-family:"Open Sans",sans-serif;font-size:14px;color:#242424}
.ac-input input,.ac-input textarea,.ac-input select,input.ac-input,textarea.ac-input,select.ac-input{
  font-family:"Open Sans",sans-serif;font-size:14px;border:1px solid #d1d1d1;border-radius:4px;padding:5px 8px}
`;

// In the page: render each card, stack them in columns, then report warnings and boxes in the title.
function layOut(cards, hostConfig) {
  const gap = 16;
  const columnHeight = 6000;
  const warnings = {};
  const boxes = {};
  let x = gap;
  let y = gap;
  let columnWidth = 0;
  let height = 0;
  for (const [name, json] of Object.entries(cards)) {
    const card = new AdaptiveCards.AdaptiveCard();
    card.hostConfig = new AdaptiveCards.HostConfig(hostConfig);
    const context = new AdaptiveCards.SerializationContext();
    card.parse(json, context);
    const messages = [];
    for (let i = 0; i < context.eventCount; i++) messages.push(context.getEventAt(i).message);
    if (messages.length) warnings[name] = messages;
    const frame = document.createElement('div');
    frame.className = 'card';
    frame.appendChild(card.render());
    document.body.appendChild(frame);
    const w = Math.ceil(frame.getBoundingClientRect().width);
    const h = Math.ceil(frame.getBoundingClientRect().height);
    frame.style.height = `${h}px`;
    if (y > gap && y + h > columnHeight) {
      x += columnWidth + gap;
      y = gap;
      columnWidth = 0;
    }
    frame.style.left = `${x}px`;
    frame.style.top = `${y}px`;
    boxes[name] = [x, y, w, h];
    y += h + gap;
    columnWidth = Math.max(columnWidth, w);
    height = Math.max(height, y);
  }
  document.title = JSON.stringify({ warnings, boxes, size: [x + columnWidth + gap, height] });
}

// Teams renders Markdown in TextBlocks; the renderer does when markdown-it is on the page.
const script = [
  read('markdown-it', 'dist/browser/markdown-it.umd.min.js', 'utf8'),
  read('adaptivecards', 'dist/adaptivecards.min.js', 'utf8'),
].join('\n');
const page = `<!doctype html><html><head><meta charset="utf-8"><title>LAYING-OUT</title><style>
${fontFaces}
${read('adaptivecards', 'dist/adaptivecards.css', 'utf8')}
${teamsCss}</style><script>${script}</script></head><body><script>
${layOut.toString()}
document.fonts.load('14px "Open Sans"').then(() => Promise.all([300, 600].map((w) => document.fonts.load(w + ' 14px "Open Sans"'))))
  .then(() => layOut(${JSON.stringify(cards).replace(/</g, '\\u003c')}, ${JSON.stringify(hostConfig)}));
</script></body></html>`;
fs.writeFileSync(pageFile, page);
