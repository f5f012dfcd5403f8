// Stands in for markdown-to-jsx, which rjsf imports to render descriptions
// only when a uiSchema asks for markdown (this UI never does): 87 KB of
// script no page would run. Descriptions show as plain text.
export function Markdown({ children }) {
  return children;
}
