// Who is signed in and what they may do. The role table comes from the
// control plane (`allowed_methods` of WhoAmI), so the UI hides exactly what
// the API would refuse.
import { createContext, useContext, type ReactNode } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { api, signOutStarted } from './api';
import type { Caller } from './types';

interface Auth {
  me: Caller;
  can: (method: string) => boolean;
  signOut: () => Promise<void>;
}

const AuthContext = createContext<Auth | null>(null);

export function useAuth(): Auth {
  const a = useContext(AuthContext);
  if (!a) throw new Error('useAuth outside AuthProvider');
  return a;
}

/** `method` is short: "AdminService/UpsertProvider". */
function canCall(me: Caller, method: string): boolean {
  return me.allowed_methods.includes(`/aigw.admin.v1.${method}`);
}

export function useMe() {
  return useQuery({ queryKey: ['me'], queryFn: api.me, retry: false, staleTime: 60_000 });
}

export function AuthProvider({ me, children }: { me: Caller; children: ReactNode }) {
  const qc = useQueryClient();
  const value: Auth = {
    me,
    can: (m) => canCall(me, m),
    signOut: async () => {
      signOutStarted();
      try {
        await api.logout();
      } finally {
        qc.clear();
        window.location.assign('/login');
      }
    },
  };
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}
