// Defaults for every data table: its scroll area (which scrolls sideways at
// phone width) can be focused, so keyboard users can scroll it.
export const SCROLL = { viewportProps: { tabIndex: 0 } };
