// Branches of a thread, from its checkpoint history (POST /threads/{id}/history).
//
// Every checkpoint names its parent, so the history is a tree. Regenerating a reply or editing a
// message runs the graph again from an earlier checkpoint, which gives that checkpoint a second
// child: a fork. The page shows one path (root to a head); at each fork on that path it offers
// the other children, each represented by its newest descendant (the branch's latest state).

export function buildTree(history) {
  const nodes = new Map();
  for (const state of history || []) {
    const id = state.checkpoint?.checkpoint_id;
    if (!id) continue;
    nodes.set(id, {
      id,
      parent: state.parent_checkpoint?.checkpoint_id ?? null,
      created: state.created_at || "",
      state,
      children: [],
    });
  }
  for (const node of nodes.values()) {
    const parent = node.parent && nodes.get(node.parent);
    if (parent) parent.children.push(node);
  }
  for (const node of nodes.values()) node.children.sort((a, b) => a.created.localeCompare(b.created));
  return nodes;
}

export function newest(nodes) {
  let best = null;
  for (const node of nodes.values()) if (!best || node.created > best.created) best = node;
  return best;
}

export function latestLeaf(node) {
  let best = node;
  const stack = [...node.children];
  while (stack.length) {
    const next = stack.pop();
    if (next.created > best.created) best = next;
    stack.push(...next.children);
  }
  return best;
}

export function pathTo(nodes, headId) {
  const path = [];
  for (let node = nodes.get(headId); node; node = node.parent ? nodes.get(node.parent) : null) {
    path.push(node);
  }
  return path.reverse();
}

export const messagesOf = (node) => node?.state?.values?.messages || [];

// The checkpoint on the path where a message first appears, and the one before it.
export function firstSeen(path, messageId) {
  for (let i = 0; i < path.length; i += 1) {
    if (messagesOf(path[i]).some((m) => m.id === messageId)) {
      return { node: path[i], parent: i > 0 ? path[i - 1] : null };
    }
  }
  return null;
}

function firstNewMessage(parent, node) {
  const known = new Set(messagesOf(parent).map((m) => m.id));
  return messagesOf(node).find((m) => !known.has(m.id)) || null;
}

// For each fork on the path: the message where the branches differ and the branches to offer.
export function forks(nodes, path) {
  const found = new Map();
  for (let i = 1; i < path.length; i += 1) {
    const parent = path[i - 1];
    if (parent.children.length < 2) continue;
    const head = path[path.length - 1];
    const options = [];
    for (const child of parent.children) {
      const leaf = child === path[i] ? head : latestLeaf(child);
      const message = firstNewMessage(parent, leaf);
      if (message) options.push({ leaf, message, current: child === path[i] });
    }
    const index = options.findIndex((o) => o.current);
    if (options.length < 2 || index === -1) continue;
    found.set(options[index].message.id, { index, options });
  }
  return found;
}
